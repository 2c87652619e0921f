// Everything is inline in include/cprefetch.h; SwiftPM needs a source file per C target.
#include "cprefetch.h"
