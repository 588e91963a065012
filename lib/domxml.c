/* domxml: placeholder until its module lands. */
#include "domxml.h"
