/**
 * What happened to an upload, told to the application: a signed webhook (stored durably
 * in the outbox before the caller goes on, delivered later by one instance) and the
 * in-process hooks of HOOKS_MODULE. Neither ever delays a client's response on the
 * application: the outbox write is local (a file, or Redis), the delivery is not awaited.
 */
import type { UploadState } from '../storage/upload-state.ts';
import type { EventData, WebhookEventType } from '../storage/webhook-events.ts';
import type { InProcessHooks } from './hooks-module.ts';
import type { Logger } from './logger.ts';
import type { WebhookDelivery } from './webhooks/deliver.ts';

export interface Events {
  emit(type: WebhookEventType, state: UploadState): Promise<void>;
}

/** The data every event carries about its upload. */
export function eventData(state: UploadState): EventData {
  const { publicArtifact, error } = detailsOf(state);
  return {
    uploadId: state.id,
    owner: state.owner ?? null,
    profile: state.profile ?? null,
    meta: state.meta ?? {},
    metadata: state.metadata ?? {},
    ...(publicArtifact ? { artifact: publicArtifact } : {}),
    ...(error ? { error } : {}),
  };
}

function detailsOf(state: UploadState) {
  if (state.phase === 'done' || state.phase === 'deleted') {
    const { key: _key, ...publicArtifact } = state.artifact;
    return { publicArtifact };
  }
  if (state.phase === 'failed' || state.phase === 'refused') return { error: state.error };
  return {};
}

export function createEvents(delivery: WebhookDelivery | undefined, hooks: InProcessHooks, log: Logger): Events {
  return {
    async emit(type, state) {
      const data = eventData(state);
      if (delivery) {
        try {
          await delivery.enqueue(type, data);
        } catch (error) {
          log.error({ err: error, uploadId: state.id, type }, 'a webhook event could not be stored in the outbox');
        }
      }
      const notify = type === 'artifact.published' ? hooks.onPublished : type === 'upload.failed' || type === 'upload.refused' ? hooks.onFailed : undefined;
      if (notify) {
        Promise.resolve()
          .then(() => notify(data))
          .catch((error: unknown) => log.warn({ err: error, uploadId: state.id, type }, 'an in-process hook failed'));
      }
    },
  };
}
