import { DriverError } from '../../src/drivers/errors.js';

/** The DriverError p rejects with; fails the test if p resolves or rejects with anything else. */
export async function failureOf(p: Promise<unknown>): Promise<DriverError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DriverError) return err;
    throw err;
  }
  throw new Error('expected a DriverError');
}
