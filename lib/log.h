/* log: placeholder until its module lands. */
#ifndef HYPERLET_LOG_H
#define HYPERLET_LOG_H
#endif
