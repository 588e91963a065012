/* compute: placeholder until its module lands (see compute.h). */
#include "compute.h"
