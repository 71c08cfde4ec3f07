/** How every benchmark prints a figure against its goal: "met" or "not met", and the goal, plainly. */

/** `label  1.05x  met (goal ≤ 1.10x)`, for a ratio that should stay at or below `goal` (`"max"`) or above. */
export function targetLine(
  label: string,
  value: number,
  goal: number,
  kind: "max" | "min",
  unit = "x",
): string {
  const met = kind === "max" ? value <= goal : value >= goal;
  const shown = `${value.toFixed(2)}${unit}`;
  return `${label.padEnd(38)} ${shown.padStart(8)}   ${met ? "met" : "not met"} (goal ${kind === "max" ? "≤" : "≥"} ${goal.toFixed(2)}${unit})`;
}
