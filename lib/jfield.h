/* jfield: placeholder until its module lands. */
#ifndef HYPERLET_JFIELD_H
#define HYPERLET_JFIELD_H
#endif
