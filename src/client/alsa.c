/* ALSA's own messages, routed into kumo's log instead of the console.
 *
 * alsa-lib prints its errors ("ALSA lib confmisc.c:855:(parse_card) cannot find card '0'", eight
 * lines for every try at a sound card that does not exist) through one process-wide handler
 * whose type is variadic, which stable Rust cannot define. This handler formats the message
 * and hands it to kumo (src/client/alsa.rs) as one string; kumo logs it at debug level. It
 * covers every thread, cpal's included. */
#include <alsa/asoundlib.h>
#include <stdarg.h>
#include <stdio.h>

typedef void (*kumo_alsa_sink)(const char *function, int err, const char *message);

static kumo_alsa_sink kumo_sink;

static void kumo_alsa_handler(const char *file, int line, const char *function, int err, const char *fmt, ...)
{
    char message[512];
    va_list args;
    kumo_alsa_sink sink;

    (void)file;
    (void)line;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    sink = __atomic_load_n(&kumo_sink, __ATOMIC_ACQUIRE);
    if (sink != NULL) {
        sink(function != NULL ? function : "", err, message);
    }
}

/* Sends every later ALSA message to `sink` (which must not unwind); 0 on success. */
int kumo_alsa_route_errors(kumo_alsa_sink sink)
{
    __atomic_store_n(&kumo_sink, sink, __ATOMIC_RELEASE);
    return snd_lib_error_set_handler(kumo_alsa_handler);
}
