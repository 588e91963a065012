/* store: placeholder until its module lands. */
#include "store.h"
