ALTER TABLE `apps` ADD `shared_models` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `apps` ADD `startup_stall_seconds` integer;--> statement-breakpoint
ALTER TABLE `apps` ADD `progress` text;--> statement-breakpoint
ALTER TABLE `marketplace_templates` ADD `model_store` text;