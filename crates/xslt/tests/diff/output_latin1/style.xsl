<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output encoding="ISO-8859-1" indent="yes"/>
  <xsl:template match="/"><r a="&#x20AC;5 &#xE4;"><t>Grüße aus Köln – €</t><xsl:copy-of select="//x"/></r></xsl:template>
</xsl:stylesheet>
