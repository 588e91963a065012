/* domxml: placeholder until its module lands. */
#ifndef HYPERLET_DOMXML_H
#define HYPERLET_DOMXML_H
#endif
