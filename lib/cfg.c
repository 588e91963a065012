/* cfg: placeholder until its module lands. */
#include "cfg.h"
