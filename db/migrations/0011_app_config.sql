CREATE TABLE `app_secrets` (
	`app_id` text NOT NULL,
	`name` text NOT NULL,
	`sealed` text NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	PRIMARY KEY(`app_id`, `name`),
	FOREIGN KEY (`app_id`) REFERENCES `apps`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `registry_credentials` (
	`host` text PRIMARY KEY NOT NULL,
	`username` text NOT NULL,
	`password_sealed` text NOT NULL,
	`created_by` text NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL
);
--> statement-breakpoint
ALTER TABLE `apps` ADD `env` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE `apps` ADD `secret_names` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `apps` ADD `secrets_version` text;--> statement-breakpoint
ALTER TABLE `apps` ADD `git_credential_sealed` text;--> statement-breakpoint
ALTER TABLE `apps` ADD `resources` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE `apps` ADD `health_path` text DEFAULT '/' NOT NULL;--> statement-breakpoint
ALTER TABLE `marketplace_templates` ADD `env` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE `marketplace_templates` ADD `secrets` text DEFAULT '[]' NOT NULL;