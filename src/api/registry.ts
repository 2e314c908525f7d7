// The schemas that become named components of the OpenAPI document. Its
// own registry (not zod's global one) so nothing else lands in the document.
import { z } from 'zod';

export const apiRegistry = z.registry<{ id: string; description?: string }>();
