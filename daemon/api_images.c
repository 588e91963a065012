/* api_images: placeholder until the daemon lands. */
