/* bdm: placeholder until its module lands. */
#include "bdm.h"
