// cblas.h from Debian's libopenblas-dev.
#include <cblas.h>
#include <stddef.h>

// LAPACK routines OpenBLAS exports (no LAPACKE): Fortran calling convention, column-major, the hidden length of
// the `uplo` string passed explicitly.
void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t uplo_length);
void spotri_(const char *uplo, const int *n, float *a, const int *lda, int *info, size_t uplo_length);
