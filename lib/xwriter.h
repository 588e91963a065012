/* xwriter: placeholder until its module lands. */
#ifndef HYPERLET_XWRITER_H
#define HYPERLET_XWRITER_H
#endif
