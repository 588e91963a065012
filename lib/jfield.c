/* jfield: placeholder until its module lands. */
#include "jfield.h"
