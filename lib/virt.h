/* virt: placeholder until its module lands. */
#ifndef HYPERLET_VIRT_H
#define HYPERLET_VIRT_H
#endif
