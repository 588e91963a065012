/* cfg: placeholder until its module lands. */
#ifndef HYPERLET_CFG_H
#define HYPERLET_CFG_H
#endif
