/* blockinfo: placeholder until its module lands. */
#include "blockinfo.h"
