print("worker placeholder")
