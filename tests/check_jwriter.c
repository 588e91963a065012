/*
 * check_jwriter: the streaming JSON writer. json-c is the referee: every
 * string escape, integer and container must come out byte for byte as
 * json-c prints it (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
 * since the instance list and the single-instance routes must answer the
 * same text. jwriter_json_text must copy exactly what json-c prints and
 * refuse every other form, leaving the writer as it was.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "jwriter.h"
#include "testutil.h"

#define FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* w's text (owned by the caller). */
static char *
finish(struct jwriter *w)
{
	char *text = NULL;
	size_t len = 0;

	ck_assert_int_eq(jwriter_finish(w, &text, &len), 0);
	ck_assert_uint_eq(strlen(text), len);
	return text;
}

/* json-c's text of o (o is put). */
static char *
json_c_text(struct json_object *o)
{
	char *s = strdup(json_object_to_json_string_ext(o, FLAGS));

	json_object_put(o);
	return s;
}

START_TEST(test_jwriter_escapes_every_byte_as_json_c_does)
{
	for (int c = 1; c < 256; c++) {
		char s[4] = {'a', (char)c, 'b', '\0'};
		struct jwriter w = {0};
		char *got, *want;

		jwriter_str(&w, s);
		got = finish(&w);
		want = json_c_text(json_object_new_string(s));
		ck_assert_msg(strcmp(got, want) == 0, "byte 0x%02x: %s, not %s",
		    c, got, want);
		free(got);
		free(want);
	}
}
END_TEST

/* Long strings take the 8-bytes-at-a-time path: every byte at every
 * offset of a word, and random strings of every byte. */
START_TEST(test_jwriter_escapes_long_strings_as_json_c_does)
{
	for (int c = 1; c < 256; c++)
		for (size_t at = 0; at < 19; at++) {
			char s[20];
			struct jwriter w = {0};
			char *got, *want;

			memset(s, 'a', 19);
			s[19] = '\0';
			s[at] = (char)c;
			jwriter_str(&w, s);
			got = finish(&w);
			want = json_c_text(json_object_new_string(s));
			ck_assert_msg(strcmp(got, want) == 0,
			    "byte 0x%02x at %zu: %s, not %s", c, at, got, want);
			free(got);
			free(want);
		}
	srand(11);
	for (int round = 0; round < 2000; round++) {
		char s[80];
		size_t n = (size_t)(rand() % 79);
		struct jwriter w = {0};
		char *got, *want;

		for (size_t i = 0; i < n; i++)
			s[i] = (char)(rand() % 4 ? 0x20 + rand() % 224
						 : 1 + rand() % 255);
		s[n] = '\0';
		jwriter_str(&w, s);
		got = finish(&w);
		want = json_c_text(json_object_new_string(s));
		ck_assert_str_eq(got, want);
		free(got);
		free(want);
	}
}
END_TEST

START_TEST(test_jwriter_writes_integers_as_json_c_does)
{
	static const int64_t v[] = {0, 1, -1, 9, 10, -10, 255, 1024, INT32_MAX,
	    INT32_MIN, (int64_t)INT32_MAX + 1, INT64_MAX, INT64_MIN,
	    INT64_MIN + 1};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct jwriter w = {0};
		char *got, *want;

		jwriter_int(&w, v[i]);
		got = finish(&w);
		want = json_c_text(json_object_new_int64(v[i]));
		ck_assert_str_eq(got, want);
		free(got);
		free(want);
	}
}
END_TEST

START_TEST(test_jwriter_puts_commas_between_values_and_members_only)
{
	struct jwriter w = {0};
	char *got;

	jwriter_obj_begin(&w);
	jwriter_key(&w, "a");
	jwriter_arr_begin(&w);
	jwriter_int(&w, 1);
	jwriter_bool(&w, true);
	jwriter_bool(&w, false);
	jwriter_null(&w);
	jwriter_str(&w, NULL);
	jwriter_obj_begin(&w);
	jwriter_obj_end(&w);
	jwriter_arr_begin(&w);
	jwriter_arr_end(&w);
	jwriter_arr_end(&w);
	jwriter_key(&w, "b");
	jwriter_obj_begin(&w);
	jwriter_key(&w, "c");
	jwriter_str(&w, "d/e");
	jwriter_key(&w, "q");
	jwriter_raw(&w, "[1]", 3);
	jwriter_obj_end(&w);
	jwriter_key(&w, "e");
	jwriter_str(&w, "");
	jwriter_obj_end(&w);
	got = finish(&w);
	ck_assert_str_eq(got,
	    "{\"a\":[1,true,false,null,null,{},[]],"
	    "\"b\":{\"c\":\"d/e\",\"q\":[1]},\"e\":\"\"}");
	free(got);
}
END_TEST

START_TEST(test_jwriter_output_matches_json_c_for_a_tree)
{
	struct json_object *o = json_object_new_object(), *a;
	struct jwriter w = {0};
	char *got, *want;

	json_object_object_add(o, "name", json_object_new_string("x\ty\x01"));
	a = json_object_new_array();
	json_object_array_add(a, json_object_new_int64(-7));
	json_object_array_add(a, NULL);
	json_object_array_add(a, json_object_new_object());
	json_object_array_add(a, json_object_new_array());
	json_object_object_add(o, "list", a);
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	want = json_c_text(o);

	jwriter_obj_begin(&w);
	jwriter_key(&w, "name");
	jwriter_str(&w, "x\ty\x01");
	jwriter_key(&w, "list");
	jwriter_arr_begin(&w);
	jwriter_int(&w, -7);
	jwriter_null(&w);
	jwriter_obj_begin(&w);
	jwriter_obj_end(&w);
	jwriter_arr_begin(&w);
	jwriter_arr_end(&w);
	jwriter_arr_end(&w);
	jwriter_key(&w, "ok");
	jwriter_bool(&w, true);
	jwriter_obj_end(&w);
	got = finish(&w);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
}
END_TEST

/* Texts json-c prints: copied as they are, after a comma when needed. */
START_TEST(test_jwriter_json_text_copies_what_json_c_prints)
{
	static const char *const texts[] = {
	    "{}",
	    "[]",
	    "null",
	    "true",
	    "-12",
	    "\"\"",
	    "{\"driver_volume_type\":\"file\",\"data\":{\"device_path\":"
	    "\"/var/lib/x\"}}",
	    "{\"a\":[1,-2,true,false,null,\"\\n\\t\\\"\\\\\\u001f\\u0000\"],"
	    "\"b\":{}}",
	    "\"caf\xc3\xa9 \x7f\"",
	    "999999999999999999",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct json_object *o = json_tokener_parse(texts[i]);
		struct jwriter w = {0};
		char *got;

		/* the referee: json-c prints it back the same */
		ck_assert_str_eq(
		    json_object_to_json_string_ext(o, FLAGS), texts[i]);
		json_object_put(o);
		jwriter_arr_begin(&w);
		jwriter_int(&w, 0);
		ck_assert_int_eq(jwriter_json_text(&w, texts[i]), 0);
		jwriter_arr_end(&w);
		got = finish(&w);
		ck_assert_int_eq(strncmp(got, "[0,", 3), 0);
		ck_assert_int_eq(
		    strncmp(got + 3, texts[i], strlen(texts[i])), 0);
		ck_assert_str_eq(got + 3 + strlen(texts[i]), "]");
		free(got);
	}
}
END_TEST

/* Random strings of every byte, printed by json-c, are all accepted. */
START_TEST(test_jwriter_json_text_accepts_json_c_strings_of_any_bytes)
{
	srand(7);
	for (int round = 0; round < 2000; round++) {
		struct json_object *o = json_object_new_object();
		struct jwriter w = {0};
		char s[24], *got;
		const char *want;
		size_t n = (size_t)(rand() % 20);

		for (size_t i = 0; i < n; i++)
			s[i] = (char)(1 + rand() % 255);
		s[n] = '\0';
		json_object_object_add(o, s, json_object_new_string(s));
		json_object_object_add(
		    o, "n", json_object_new_int64((int64_t)rand() - rand()));
		want = json_object_to_json_string_ext(o, FLAGS);
		ck_assert_int_eq(jwriter_json_text(&w, want), 0);
		got = finish(&w);
		ck_assert_str_eq(got, want);
		free(got);
		json_object_put(o);
	}
}
END_TEST

START_TEST(test_jwriter_json_text_refuses_other_forms_and_writes_nothing)
{
	static const char *const texts[] = {
	    "",
	    " {}",
	    "{} ",
	    "{\"a\": 1}",
	    "[1, 2]",
	    "\"a\\/b\"",
	    "\"\\u0041\"",
	    "\"\\u000a\"",
	    "\"\\u001F\"",
	    "\"\\u00e9\"",
	    "\"\\x\"",
	    "\"a\nb\"",
	    "\"open",
	    "1.5",
	    "1e3",
	    "-0",
	    "01",
	    "-",
	    "1234567890123456789",
	    "tru",
	    "nul",
	    "True",
	    "{\"a\"}",
	    "{\"a\":}",
	    "{1:2}",
	    "[1,]",
	    "[,1]",
	    "{\"a\":1,}",
	    "[1]]",
	    "{}{}",
	    "'a'",
	};
	char deep[2 * JWRITER_MAX_DEPTH + 3];

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct jwriter w = {0};
		char *got;

		jwriter_arr_begin(&w);
		ck_assert_msg(jwriter_json_text(&w, texts[i]) == -EINVAL,
		    "accepted %s", texts[i]);
		jwriter_arr_end(&w);
		got = finish(&w);
		ck_assert_str_eq(got, "[]");
		free(got);
	}
	{
		struct jwriter w = {0};

		ck_assert_int_eq(jwriter_json_text(&w, NULL), -EINVAL);
		memset(deep, '[', JWRITER_MAX_DEPTH + 1);
		memset(
		    deep + JWRITER_MAX_DEPTH + 1, ']', JWRITER_MAX_DEPTH + 1);
		deep[2 * JWRITER_MAX_DEPTH + 2] = '\0';
		ck_assert_int_eq(jwriter_json_text(&w, deep), -EINVAL);
		/* one level less is fine */
		deep[2 * JWRITER_MAX_DEPTH + 1] = '\0';
		ck_assert_int_eq(jwriter_json_text(&w, deep + 1), 0);
		jwriter_reset(&w);
	}
}
END_TEST

START_TEST(test_jwriter_finish_of_nothing_is_an_empty_string)
{
	struct jwriter w;
	char *got;

	jwriter_init(&w, 0);
	got = finish(&w);
	ck_assert_str_eq(got, "");
	free(got);
	jwriter_init(&w, 100);
	got = finish(&w);
	ck_assert_str_eq(got, "");
	free(got);
	/* finish empties w: it can be finished again */
	got = finish(&w);
	ck_assert_str_eq(got, "");
	free(got);
}
END_TEST

START_TEST(test_jwriter_grows_past_its_hint)
{
	struct jwriter w;
	char *got;
	size_t i;

	jwriter_init(&w, 8);
	jwriter_arr_begin(&w);
	for (i = 0; i < 10000; i++)
		jwriter_str(&w, "0123456789");
	jwriter_arr_end(&w);
	got = finish(&w);
	/* [ and ], and each string with its quotes and comma, but one */
	ck_assert_uint_eq(strlen(got), 2 + 10000 * 13 - 1);
	ck_assert_int_eq(strncmp(got, "[\"0123456789\",\"", 15), 0);
	free(got);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("jwriter");
	TCase *tc;

	tc = tcase_create("jwriter_str");
	tcase_add_test(tc, test_jwriter_escapes_every_byte_as_json_c_does);
	tcase_add_test(tc, test_jwriter_escapes_long_strings_as_json_c_does);
	suite_add_tcase(s, tc);
	tc = tcase_create("jwriter_int");
	tcase_add_test(tc, test_jwriter_writes_integers_as_json_c_does);
	suite_add_tcase(s, tc);
	tc = tcase_create("containers");
	tcase_add_test(
	    tc, test_jwriter_puts_commas_between_values_and_members_only);
	tcase_add_test(tc, test_jwriter_output_matches_json_c_for_a_tree);
	suite_add_tcase(s, tc);
	tc = tcase_create("jwriter_json_text");
	tcase_add_test(tc, test_jwriter_json_text_copies_what_json_c_prints);
	tcase_add_test(
	    tc, test_jwriter_json_text_accepts_json_c_strings_of_any_bytes);
	tcase_add_test(
	    tc, test_jwriter_json_text_refuses_other_forms_and_writes_nothing);
	suite_add_tcase(s, tc);
	tc = tcase_create("jwriter_finish");
	tcase_add_test(tc, test_jwriter_finish_of_nothing_is_an_empty_string);
	tcase_add_test(tc, test_jwriter_grows_past_its_hint);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return testutil_run(suite());
}
