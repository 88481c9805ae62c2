document.getElementById("clock").textContent = "JavaScript ran at " + new Date().toISOString();
