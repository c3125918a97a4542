/*
 * weft/weft.h - everything: coroutines and sync (weft/sched.h), time and
 * I/O (weft/io.h), HTTP fetches (weft/http.h). Link weft::weft (CMake) or `pkg-config --libs weft`.
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include "weft/io.h"
#include "weft/sched.h"
#if __has_include("weft/http.h") /* when weft::http is built and linked */
#include "weft/http.h"
#endif

#endif
