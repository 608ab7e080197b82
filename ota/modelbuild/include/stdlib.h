/* Freestanding stand-in: emlearn's headers include <stdlib.h>; its debug path (getenv, exit)
 * is compiled out (no EML_DEBUG) and a model module has no heap. */
#ifndef OTA_MODELBUILD_STDLIB_H
#define OTA_MODELBUILD_STDLIB_H
#include <stddef.h>
#endif
