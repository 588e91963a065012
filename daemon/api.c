/* api: placeholder until the daemon lands. */
