CREATE TABLE `audit_prune_marks` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`cutoff` text NOT NULL,
	`archive` text,
	`at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `commands_finished` ON `commands` (`finished_at`);--> statement-breakpoint
CREATE INDEX `app_events_created` ON `app_events` (`created_at`);--> statement-breakpoint
DROP TRIGGER `audit_log_no_delete`;
--> statement-breakpoint
CREATE TRIGGER `audit_log_no_delete` BEFORE DELETE ON `audit_log` WHEN OLD.`at` >= coalesce((SELECT max(`cutoff`) FROM `audit_prune_marks`), '') BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
--> statement-breakpoint
CREATE TRIGGER `audit_prune_marks_no_update` BEFORE UPDATE ON `audit_prune_marks` BEGIN SELECT RAISE(ABORT, 'audit_prune_marks is append-only'); END;
--> statement-breakpoint
CREATE TRIGGER `audit_prune_marks_no_delete` BEFORE DELETE ON `audit_prune_marks` BEGIN SELECT RAISE(ABORT, 'audit_prune_marks is append-only'); END;
