<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output indent="yes" omit-xml-declaration="yes"/>
  <xsl:template match="/"><r><a><b>t</b><c/></a><mixed>x<y/>z</mixed></r></xsl:template>
</xsl:stylesheet>
