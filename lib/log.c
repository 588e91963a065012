/* log: placeholder until its module lands. */
#include "log.h"
