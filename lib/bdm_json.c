/* bdm_json: placeholder until its module lands. */
#include "bdm_json.h"
