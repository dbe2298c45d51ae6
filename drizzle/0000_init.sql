CREATE TABLE `dead_letters` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`consumer` text NOT NULL,
	`topic` text NOT NULL,
	`event_id` text NOT NULL,
	`event` text NOT NULL,
	`error` text NOT NULL,
	`attempts` integer NOT NULL,
	`status` text DEFAULT 'DEAD' NOT NULL,
	`first_failed_at` integer NOT NULL,
	`last_failed_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `dead_letters_consumer_event_unique` ON `dead_letters` (`consumer`,`event_id`);--> statement-breakpoint
CREATE INDEX `dead_letters_status_idx` ON `dead_letters` (`status`,`consumer`);--> statement-breakpoint
CREATE INDEX `dead_letters_topic_idx` ON `dead_letters` (`topic`);--> statement-breakpoint
CREATE TABLE `outbox` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`event_id` text NOT NULL,
	`topic` text NOT NULL,
	`type` text NOT NULL,
	`source` text NOT NULL,
	`subject` text,
	`key` text,
	`time` integer NOT NULL,
	`data_content_type` text NOT NULL,
	`data` text NOT NULL,
	`correlation_id` text,
	`causation_id` text,
	`status` text DEFAULT 'PENDING' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_error` text,
	`created_at` integer NOT NULL,
	`published_at` integer,
	`next_attempt_at` integer NOT NULL,
	`claimed_by` text,
	`claim_expires_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `outbox_event_id_unique` ON `outbox` (`event_id`);--> statement-breakpoint
CREATE INDEX `outbox_status_id_idx` ON `outbox` (`status`,`id`);--> statement-breakpoint
CREATE INDEX `outbox_status_published_at_idx` ON `outbox` (`status`,`published_at`);--> statement-breakpoint
CREATE TABLE `processed_messages` (
	`consumer` text NOT NULL,
	`event_id` text NOT NULL,
	`processed_at` integer NOT NULL,
	PRIMARY KEY(`consumer`, `event_id`)
);
--> statement-breakpoint
CREATE INDEX `processed_messages_consumer_at_idx` ON `processed_messages` (`consumer`,`processed_at`);