/* store: placeholder until its module lands. */
#ifndef HYPERLET_STORE_H
#define HYPERLET_STORE_H
#endif
