/* placeholder */
#ifndef HYPERLET_HYPERLET_H
#define HYPERLET_HYPERLET_H
#endif
