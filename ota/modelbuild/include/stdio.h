/* Freestanding stand-in: emlearn's headers include <stdio.h> for debug printing, which a model
 * module never does (it has no host to print to). */
#ifndef OTA_MODELBUILD_STDIO_H
#define OTA_MODELBUILD_STDIO_H
#define stderr ((void *)0)
#define fprintf(...) ((void)0)
#define printf(...) ((void)0)
#endif
