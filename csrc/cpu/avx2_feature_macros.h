#pragma once
// Preprocessor only, for the AVX2 and AVX-512 kernel files after their target pragmas: the pragma enables
// the instructions but not the feature macros that headers (Sleef's among them) test to declare
// their AVX2 entry points, so they are stated here.
#ifndef __AVX__
#define __AVX__ 1
#endif
#ifndef __AVX2__
#define __AVX2__ 1
#endif
#ifndef __FMA__
#define __FMA__ 1
#endif
#ifndef __F16C__
#define __F16C__ 1
#endif
