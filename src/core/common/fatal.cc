#include "core/common/fatal.h"

#include <cstdio>
#include <cstdlib>

namespace buckwild {

void fatal(const char* what) {
  std::fprintf(stderr, "buckwild: fatal: %s\n", what);
  std::abort();
}

}  // namespace buckwild
