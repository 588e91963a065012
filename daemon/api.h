/* placeholder */
#ifndef HYPERLET_API_H
#define HYPERLET_API_H
#endif
