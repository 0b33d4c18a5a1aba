// cblas.h from Debian's libopenblas-dev.
#include <cblas.h>
