CREATE TABLE `deploys` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`app_id` text NOT NULL,
	`command_id` text NOT NULL,
	`action` text NOT NULL,
	`commit_sha` text,
	`ref` text,
	`ref_kind` text,
	`actor` text,
	`outcome` text NOT NULL,
	`error` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL,
	FOREIGN KEY (`app_id`) REFERENCES `apps`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "deploys_action_enum" CHECK("deploys"."action" IN ('provision', 'reinstall', 'update', 'rollback')),
	CONSTRAINT "deploys_outcome_enum" CHECK("deploys"."outcome" IN ('ok', 'failed'))
);
--> statement-breakpoint
CREATE INDEX `deploys_app` ON `deploys` (`app_id`,`id`);--> statement-breakpoint
ALTER TABLE `apps` ADD `git_ref` text;--> statement-breakpoint
ALTER TABLE `apps` ADD `git_submodules` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `marketplace_templates` ADD `git_submodules` integer DEFAULT false NOT NULL;