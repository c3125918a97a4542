/*
 * weft/weft.h - everything: coroutines and sync (weft/sched.h), time and
 * I/O (weft/io.h). Link weft::weft (CMake) or `pkg-config --libs weft`.
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include "weft/io.h"
#include "weft/sched.h"

#endif
