/* virt: placeholder until its module lands. */
#include "virt.h"
