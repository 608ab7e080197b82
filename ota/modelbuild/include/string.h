/* Freestanding stand-in: declares the memset/memcpy that the generated module defines itself
 * (clang may also emit calls to them for array initialisation; a model imports nothing). */
#ifndef OTA_MODELBUILD_STRING_H
#define OTA_MODELBUILD_STRING_H
#include <stddef.h>
void *memset(void *dest, int c, size_t n);
void *memcpy(void *dest, const void *src, size_t n);
#endif
