#!/usr/bin/env python
"""Tutorial 7, "Publisher confirms".

With publisher confirms turned on for a channel, the broker acknowledges (or, if it
could not take care of it, negatively acknowledges) every message published on it.
This program publishes the same number of messages with three strategies for
waiting for those confirms, and prints how long each took:

1. publishing messages individually: publish one message, wait for its confirm,
   publish the next one (simple, but slow: one round trip per message);
2. publishing messages in batches: publish a batch, then wait until the whole
   batch is confirmed before publishing the next one;
3. handling confirms asynchronously: publish everything straight away and let a
   callback keep track of the messages still waiting for their confirm.

Run:  python publisher_confirms.py [message_count]
      (default 50,000; the MESSAGE_COUNT environment variable works too)
"""
import collections
import os
import sys
import time

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
MESSAGE_COUNT = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MESSAGE_COUNT", 50_000))
BATCH_SIZE = 100
CONFIRM_TIMEOUT = 60  # seconds to wait for outstanding confirms before giving up


def report(how, seconds):
    print("Published %s messages %s in %s ms" % (f"{MESSAGE_COUNT:,}", how, f"{round(seconds * 1000):,}"))


def publish_messages_individually():
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    # A private, server-named queue that disappears with the connection.
    queue = channel.queue_declare(queue="", exclusive=True).method.queue

    # In confirm mode a blocking channel's basic_publish returns only once the
    # broker has confirmed the message, and raises pika.exceptions.NackError
    # if the broker nack-ed it.
    channel.confirm_delivery()

    start = time.perf_counter()
    for i in range(MESSAGE_COUNT):
        channel.basic_publish(exchange="", routing_key=queue, body=str(i))
    elapsed = time.perf_counter() - start

    connection.close()
    report("individually", elapsed)


class ConfirmListener:
    """Publishes MESSAGE_COUNT messages on an asynchronous connection and tracks
    their confirms in a callback.

    With batch_size=None every message is published at once and the confirms
    are handled as they come in; otherwise batch_size messages are published,
    and the next batch only once all of them have been confirmed.
    """

    def __init__(self, batch_size=None):
        self.batch_size = batch_size
        # delivery tag (the message's sequence number on the channel) -> body,
        # oldest first: the messages the broker has not confirmed yet.
        self.outstanding = collections.OrderedDict()
        self.next_tag = 1
        self.published = 0
        self.nacked = 0
        self.start = None
        self.elapsed = None
        self.error = None
        self.timer = None
        self.connection = None
        self.channel = None
        self.queue = None

    def run(self):
        """Returns the time taken, in seconds."""
        self.connection = pika.SelectConnection(
            pika.URLParameters(AMQP_URL),
            on_open_callback=self.on_connection_open,
            on_open_error_callback=self.on_connection_open_error,
            on_close_callback=self.on_connection_closed,
        )
        self.connection.ioloop.start()
        if self.error:
            raise RuntimeError(self.error)
        return self.elapsed

    # -- setting up -----------------------------------------------------------

    def on_connection_open(self, connection):
        connection.channel(on_open_callback=self.on_channel_open)

    def on_connection_open_error(self, connection, error):
        self.error = "cannot connect: %r" % (error,)
        connection.ioloop.stop()

    def on_connection_closed(self, connection, reason):
        if self.elapsed is None and self.error is None:
            self.error = "connection closed: %r" % (reason,)
        connection.ioloop.stop()

    def on_channel_open(self, channel):
        self.channel = channel
        channel.add_on_close_callback(self.on_channel_closed)
        channel.confirm_delivery(ack_nack_callback=self.on_confirm, callback=self.on_confirm_mode)

    def on_channel_closed(self, channel, reason):
        if self.elapsed is None:
            self.fail("channel closed: %r" % (reason,))

    def on_confirm_mode(self, _frame):
        self.channel.queue_declare(queue="", exclusive=True, callback=self.on_queue_declared)

    def on_queue_declared(self, frame):
        self.queue = frame.method.queue
        self.timer = self.connection.ioloop.call_later(CONFIRM_TIMEOUT, self.on_timeout)
        self.start = time.perf_counter()
        self.publish_next()

    # -- publishing and confirms --------------------------------------------------

    def publish_next(self):
        remaining = MESSAGE_COUNT - self.published
        count = remaining if self.batch_size is None else min(self.batch_size, remaining)
        for _ in range(count):
            body = str(self.published)
            self.outstanding[self.next_tag] = body
            self.next_tag += 1
            self.published += 1
            self.channel.basic_publish(exchange="", routing_key=self.queue, body=body)

    def on_confirm(self, frame):
        method = frame.method
        tag = method.delivery_tag
        if method.multiple:
            # Confirms every outstanding message up to and including this tag.
            confirmed = []
            while self.outstanding and next(iter(self.outstanding)) <= tag:
                confirmed.append(self.outstanding.popitem(last=False))
        else:
            confirmed = [(tag, self.outstanding.pop(tag, None))]

        if isinstance(method, pika.spec.Basic.Nack):
            for seq, body in confirmed:
                self.nacked += 1
                sys.stderr.write(
                    "Message with body %s has been nack-ed. Sequence number: %d, multiple: %s\n"
                    % (body, seq, method.multiple)
                )

        if not self.outstanding:
            if self.published < MESSAGE_COUNT:
                self.publish_next()  # the whole batch is confirmed: next one
            else:
                self.finish()

    def finish(self):
        self.elapsed = time.perf_counter() - self.start
        self.connection.ioloop.remove_timeout(self.timer)
        self.connection.close()

    def on_timeout(self):
        self.fail(
            "%d messages could not be confirmed in %d seconds"
            % (len(self.outstanding), CONFIRM_TIMEOUT)
        )

    def fail(self, message):
        if self.error is None:
            self.error = message
        if self.connection.is_open:
            self.connection.close()
        elif self.connection.is_closed:
            self.connection.ioloop.stop()


def publish_messages_in_batch():
    report("in batch", ConfirmListener(batch_size=BATCH_SIZE).run())


def handle_publish_confirms_asynchronously():
    report("and handled confirms asynchronously", ConfirmListener().run())


if __name__ == "__main__":
    if MESSAGE_COUNT < 1:
        sys.exit("the message count must be at least 1")
    try:
        publish_messages_individually()
        publish_messages_in_batch()
        handle_publish_confirms_asynchronously()
    except KeyboardInterrupt:
        print("Interrupted")
        sys.exit(0)
