CREATE TABLE "dead_letters" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "dead_letters_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"consumer" text NOT NULL,
	"topic" text NOT NULL,
	"event_id" text NOT NULL,
	"event" text NOT NULL,
	"error" text NOT NULL,
	"attempts" integer NOT NULL,
	"status" text DEFAULT 'DEAD' NOT NULL,
	"first_failed_at" timestamp (3) with time zone NOT NULL,
	"last_failed_at" timestamp (3) with time zone NOT NULL,
	"updated_at" timestamp (3) with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "outbox" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "outbox_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"event_id" text NOT NULL,
	"topic" text NOT NULL,
	"type" text NOT NULL,
	"key" text,
	"body" text NOT NULL,
	"status" text DEFAULT 'PENDING' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp (3) with time zone NOT NULL,
	"published_at" timestamp (3) with time zone,
	"next_attempt_at" timestamp (3) with time zone NOT NULL,
	"claimed_by" text,
	"claim_expires_at" timestamp (3) with time zone
);
--> statement-breakpoint
CREATE TABLE "processed_messages" (
	"consumer" text NOT NULL,
	"event_id" text NOT NULL,
	"processed_at" timestamp (3) with time zone NOT NULL,
	CONSTRAINT "processed_messages_consumer_event_id_pk" PRIMARY KEY("consumer","event_id")
);
--> statement-breakpoint
CREATE UNIQUE INDEX "dead_letters_consumer_event_unique" ON "dead_letters" USING btree ("consumer","event_id");--> statement-breakpoint
CREATE INDEX "dead_letters_status_idx" ON "dead_letters" USING btree ("status","consumer");--> statement-breakpoint
CREATE INDEX "dead_letters_topic_idx" ON "dead_letters" USING btree ("topic");--> statement-breakpoint
CREATE UNIQUE INDEX "outbox_event_id_unique" ON "outbox" USING btree ("event_id");--> statement-breakpoint
CREATE INDEX "outbox_pending_idx" ON "outbox" USING btree ("id") WHERE "outbox"."status" = 'PENDING';--> statement-breakpoint
CREATE INDEX "outbox_pending_key_idx" ON "outbox" USING btree ("key","id") WHERE "outbox"."status" = 'PENDING' and "outbox"."key" is not null;--> statement-breakpoint
CREATE INDEX "outbox_published_at_idx" ON "outbox" USING btree ("published_at") WHERE "outbox"."status" = 'PUBLISHED';--> statement-breakpoint
CREATE INDEX "processed_messages_consumer_at_idx" ON "processed_messages" USING btree ("consumer","processed_at");--> statement-breakpoint
CREATE INDEX "processed_messages_at_idx" ON "processed_messages" USING btree ("processed_at");