/* check_compute: placeholder until its module lands. */
#include <stdlib.h>

#include "testutil.h"

START_TEST(test_compute_placeholder_builds)
{
	ck_assert_int_eq(1, 1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("compute");
	TCase *tc = tcase_create("placeholder");

	tcase_add_test(tc, test_compute_placeholder_builds);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
