/*
 * coffee.c - the seed example: three orders start together and are all
 * ready after ~2 s, not 6 s, because a sleeping coroutine parks and lets
 * the worker run the others.
 *
 *   build/default/examples/coffee
 */
#include <stdio.h>
#include <weft/io.h>

static void *order_coffee(void *who) {
  printf("%s ordered coffee\n", (char *)who);
  weft_sleep_ms(2000); /* parks; the worker runs others */
  printf("%s's coffee is ready\n", (char *)who);
  return NULL;
}

static void *main_co(void *arg) {
  (void)arg;
  weft_co *c[3];
  weft_spawn(&c[0], order_coffee, "Alice");
  weft_spawn(&c[1], order_coffee, "Bob");
  weft_spawn(&c[2], order_coffee, "Charlie");
  for (int i = 0; i < 3; i++)
    weft_join(c[i], NULL); /* gather */
  return NULL;
}

int main(void) { return weft_run(NULL, main_co, NULL, NULL) ? 1 : 0; }
