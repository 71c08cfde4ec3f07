export const summary = "x";
export async function run() {
  return 0;
}
