"""The tasks recipe-keras ships, behind the seam of ``recipe_keras.task``.

Each module holds one task's class; ``recipe_keras.task.get_task`` imports it the
first time a step asks for it, so a step never imports a task by name.
"""
