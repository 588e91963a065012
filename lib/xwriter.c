/* xwriter: placeholder until its module lands. */
#include "xwriter.h"
