/* api_instances: placeholder until the daemon lands. */
