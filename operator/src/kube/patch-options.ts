// client-node's patch calls do not pick the patch type from the body (kubernetes-client/javascript#795, #1933):
// every patch we send states its Content-Type explicitly through one of these.

import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

type Options = ReturnType<typeof setHeaderOptions>;

export const applyPatchOptions = (): Options => setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
export const jsonPatchOptions = (): Options => setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
export const mergePatchOptions = (): Options => setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
