CREATE TABLE `gateway_shares` (
	`id` text PRIMARY KEY NOT NULL,
	`app_id` text NOT NULL,
	`token_hash` text NOT NULL,
	`label` text,
	`created_by` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	`expires_at` text NOT NULL,
	`revoked_at` text,
	FOREIGN KEY (`app_id`) REFERENCES `apps`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `gateway_shares_token_hash_unique` ON `gateway_shares` (`token_hash`);--> statement-breakpoint
CREATE INDEX `gateway_shares_app` ON `gateway_shares` (`app_id`);--> statement-breakpoint
ALTER TABLE `apps` ADD `public_port` integer DEFAULT false NOT NULL CHECK (`public_port` IN (0, 1));--> statement-breakpoint
ALTER TABLE `apps` ADD `idle_stop_minutes` integer CHECK (`idle_stop_minutes` IS NULL OR `idle_stop_minutes` BETWEEN 1 AND 43200);